"""The breaking-change rules of the contract's versioning promise (D12), one id each.

Within v1, names, types, requiredness, error codes and URLs never change; optional request
fields and new response fields may be added, so clients must ignore unknown response fields.
Every enum is closed within a major version (the contract's "Versioning and enums"): a value
added to a response enum, a new error code included, is breaking; an error response that now
lists a code the contract already had is not. Every change `layers-contract diff` reports
carries one of these ids; `breaking` says whether the rule breaks that promise. The ids are
stable: CI logs, JUnit reports and the README use them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    breaking: bool
    summary: str


_RULES = [
    # -- paths, operations, servers ---------------------------------------------------------
    Rule("path-removed", True, "a path was removed or renamed"),
    Rule("path-added", False, "a path was added"),
    Rule("operation-removed", True, "an operation (method of a path) was removed"),
    Rule("operation-added", False, "an operation was added"),
    Rule("operation-id-changed", True, "an operation's operationId changed (SDK method names)"),
    Rule("operation-deprecated", False, "an operation was marked deprecated"),
    Rule("server-removed", True, "a server URL was removed or changed"),
    Rule("server-added", False, "a server URL was added"),
    # -- security ---------------------------------------------------------------------------
    Rule("security-changed", True, "a security requirement was removed, added or changed"),
    Rule("security-alternative-added", False, "another way to authenticate was added"),
    Rule("security-scheme-changed", True, "a security scheme's type, header or scheme changed"),
    Rule("required-scope-changed", True, "the scope an operation requires changed"),
    # -- parameters and request bodies --------------------------------------------------------
    Rule("parameter-removed", True, "a parameter was removed"),
    Rule("parameter-added", False, "an optional parameter was added"),
    Rule("parameter-required-added", True, "a new required parameter"),
    Rule("parameter-became-required", True, "an optional parameter became required"),
    Rule("parameter-became-optional", False, "a required parameter became optional"),
    Rule("request-body-required-added", True, "a required request body was added"),
    Rule("request-body-became-required", True, "the request body became required"),
    Rule("request-body-removed", True, "the request body was removed"),
    Rule("request-media-type-removed", True, "a request media type is no longer accepted"),
    Rule("request-media-type-added", False, "a request media type was added"),
    Rule("request-property-removed", True, "a request property was removed"),
    Rule("request-property-added", False, "an optional request property was added"),
    Rule("request-property-required-added", True, "a new required request property"),
    Rule("request-property-became-required", True, "an optional request property became required"),
    Rule("request-property-became-optional", False, "a required request property became optional"),
    Rule("request-additional-properties-forbidden", True,
         "a request object no longer accepts properties it does not list"),
    Rule("request-enum-value-removed", True, "a request enum lost a value"),
    Rule("request-enum-value-added", False, "a request enum gained a value"),
    Rule("request-enum-added", True, "a request value is now limited to an enum"),
    Rule("request-max-decreased", True,
         "a request maxLength, maxItems, maxProperties or maximum was lowered or added"),
    Rule("request-min-increased", True,
         "a request minLength, minItems, minProperties or minimum was raised or added"),
    Rule("request-constraint-relaxed", False, "a request constraint was relaxed or removed"),
    Rule("request-pattern-changed", True, "a request pattern was added or changed"),
    Rule("request-pattern-removed", False, "a request pattern was removed"),
    Rule("request-nullable-removed", True, "a request value may no longer be null"),
    # -- responses ----------------------------------------------------------------------------
    Rule("response-status-removed", True, "a response status was removed"),
    Rule("response-status-added", False, "a response status was added"),
    Rule("response-media-type-removed", True, "a response media type was removed"),
    Rule("response-media-type-added", False, "a response media type was added"),
    Rule("response-header-removed", True, "a response header was removed or is no longer required"),
    Rule("response-header-added", False, "a response header was added"),
    Rule("response-property-removed", True, "a response property was removed or renamed"),
    Rule("response-property-added", False, "a response property was added"),
    Rule("response-variant-narrowed", False,
         "a response documents fewer cases of its tag (e.g. error.code); an optional property "
         "only those cases had goes with them"),
    Rule("response-property-no-longer-required", True,
         "a response property is no longer required"),
    Rule("response-property-became-required", False, "a response property became required"),
    Rule("response-enum-value-added", True,
         "a response enum gained a value (a client's exhaustive switch breaks)"),
    Rule("response-enum-value-removed", False, "a response enum lost a value"),
    Rule("response-enum-removed", True, "a response value is no longer limited to an enum"),
    Rule("response-nullable-added", True, "a response value may now be null"),
    Rule("response-constraint-changed", False, "a response constraint or pattern changed"),
    Rule("error-code-removed", True, "an error code is no longer documented anywhere"),
    Rule("error-code-added", True,
         "a new error code (error codes are a closed enum within a major version)"),
    Rule("response-error-code-added", False,
         "an operation's response now documents an error code the contract already had"),
    # -- both directions ------------------------------------------------------------------------
    Rule("type-changed", True, "a value's type changed"),
    Rule("type-widened", False, "a request value accepts more types (or a response fewer)"),
    Rule("format-changed", True, "a value's format changed"),
    Rule("default-changed", True, "a default value changed or was removed"),
    Rule("default-added", False, "a default value was documented"),
    Rule("documentation-changed", False,
         "a summary, description, example, tag or x- extension changed"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def is_breaking(rule_id: str) -> bool:
    """Whether the rule breaks the versioning promise (a KeyError names an unknown rule)."""
    return RULES[rule_id].breaking
