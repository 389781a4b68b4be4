"""Publishing the contract (D12): release files, the reference page, the changelog and the
breaking-change diff. The command is `layers-contract` (contract.cli)."""

from contract.diff import Change, DiffResult, diff
from contract.document import Document, load

__all__ = ["Change", "DiffResult", "Document", "diff", "load"]
