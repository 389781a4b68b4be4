// x-codeSamples in Redocly's format (lang, label, source): curl, TypeScript fetch and Python
// httpx, each against the local mock with a test key (tests/test_code_samples.py runs them).
const WANTED = [
  ['Shell', 'curl'],
  ['TypeScript', 'TypeScript (fetch)'],
  ['Python', 'Python (httpx)'],
];

export default (operation, _options, context) => {
  const samples = operation['x-codeSamples'];
  if (!Array.isArray(samples)) {
    return [{ message: 'x-codeSamples is missing', path: context.path }];
  }
  const results = [];
  WANTED.forEach(([lang, label]) => {
    const found = samples.find((s) => s && s.lang === lang && s.label === label);
    if (!found) {
      results.push({ message: `no ${label} sample (lang ${lang})`, path: [...context.path, 'x-codeSamples'] });
    } else if (typeof found.source !== 'string' || !found.source.includes('http://127.0.0.1:4010')
               || !found.source.includes('lp_test_')) {
      results.push({ message: `the ${label} sample must call http://127.0.0.1:4010 with a test key`,
                     path: [...context.path, 'x-codeSamples', samples.indexOf(found)] });
    }
  });
  return results;
};
