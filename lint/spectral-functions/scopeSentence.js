// The operation's description starts by naming its scope in plain words (generated docs show
// descriptions, never vendor extensions).
export default (operation, _options, context) => {
  const scopes = operation['x-required-scopes'];
  if (!Array.isArray(scopes) || scopes.length === 0) {
    return [{ message: 'no x-required-scopes to name', path: context.path }];
  }
  const sentence = `Requires the \`${scopes[0]}\` scope.`;
  if (typeof operation.description !== 'string' || !operation.description.startsWith(sentence)) {
    return [{ message: `description must start with "${sentence}"`, path: [...context.path, 'description'] }];
  }
  return [];
};
