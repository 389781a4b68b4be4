// Every 4xx/5xx response refers to the error union: its JSON body is {"error": X} where X is one
// error code's schema (an object whose `code` is a one-value enum) or a oneOf of such schemas
// with a discriminator on `code` whose mapping names exactly those members.
const follow = (root, node) => {
  let seen = 0;
  while (node && typeof node.$ref === 'string' && seen++ < 20) {
    node = node.$ref.replace(/^#\//, '').split('/')
      .reduce((at, part) => (at === undefined ? undefined : at[part.replace(/~1/g, '/').replace(/~0/g, '~')]), root);
  }
  return node;
};

const codeOf = (root, schema) => {
  const code = schema && schema.properties && follow(root, schema.properties.code);
  const values = code && code.enum;
  return Array.isArray(values) && values.length === 1 ? values[0] : undefined;
};

export default (responses, _options, context) => {
  const root = context.document.data;
  const results = [];
  Object.entries(responses || {}).forEach(([status, response]) => {
    if (!/^[45]/.test(status)) return;
    const where = [...context.path, status];
    const media = follow(root, response);
    const json = media && media.content && media.content['application/json'];
    const envelope = json && follow(root, json.schema);
    const errorRef = envelope && envelope.properties && envelope.properties.error;
    if (!errorRef || typeof errorRef.$ref !== 'string'
        || !(envelope.required || []).includes('error')) {
      results.push({ message: `${status}: the body must be the error envelope {"error": <named error schema>}`, path: where });
      return;
    }
    const error = follow(root, errorRef);
    if (codeOf(root, error)) return;
    if (!Array.isArray(error.oneOf) || !error.discriminator
        || error.discriminator.propertyName !== 'code') {
      results.push({ message: `${status}: ${errorRef.$ref} must be one code's schema or a oneOf discriminated by code`, path: where });
      return;
    }
    const mapping = error.discriminator.mapping || {};
    const members = error.oneOf.map((m) => m.$ref);
    error.oneOf.forEach((member) => {
      const code = codeOf(root, follow(root, member));
      if (!code) {
        results.push({ message: `${status}: ${member.$ref} is not an error code's schema`, path: where });
      } else if (mapping[code] !== member.$ref) {
        results.push({ message: `${status}: the discriminator mapping must send ${code} to ${member.$ref}`, path: where });
      }
    });
    Object.values(mapping).forEach((ref) => {
      if (!members.includes(ref)) {
        results.push({ message: `${status}: the mapping names ${ref}, which is not in the oneOf`, path: where });
      }
    });
  });
  return results;
};
