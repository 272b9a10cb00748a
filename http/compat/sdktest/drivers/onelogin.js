// Drives envy's smarthooks dialect with OneLogin's official SDK
// (@onelogin/sdk 3, published as TypeScript source: this driver compiles
// it with the typescript package as it is required). Reads ENVY_URL,
// ENVY_TOKEN and SDKTEST_VALUES; prints one JSON object of what it saw.
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2019, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};

const sdkDir = path.dirname(require.resolve('@onelogin/sdk/package.json'));
const { DefaultApi } = require(path.join(sdkDir, 'api.ts'));

async function main() {
  const values = JSON.parse(process.env.SDKTEST_VALUES);
  const api = new DefaultApi(process.env.ENVY_URL);
  const auth = 'bearer:' + process.env.ENVY_TOKEN;
  const out = { created: {}, got: {} };
  const ids = {};

  for (const [name, value] of Object.entries(values)) {
    const { response, body } = await api.createEnvironmentVariable(auth, { name, value });
    ids[name] = body.id;
    out.created[name] = response.statusCode === 201 && body.name === name && body.value === undefined;
    const got = await api.getEnvironmentVariable(auth, body.id);
    out.got[name] = got.body.name === name && got.body.id === body.id;
  }
  const page1 = await api.listEnvironmentVariables(auth, 2, 1);
  out.page1 = { names: page1.body.map((v) => v.name), total: page1.response.headers['total-count'], after: page1.response.headers['after-cursor'] };
  const page2 = await api.listEnvironmentVariables(auth, undefined, undefined, page1.response.headers['after-cursor']);
  out.page2 = page2.body.map((v) => v.name);
  const all = await api.listEnvironmentVariables(auth, 1000);
  out.names = all.body.map((v) => v.name);

  const first = process.env.SDKTEST_UPDATE;
  const updated = await api.updateEnvironmentVariable(auth, ids[first], { value: values[first] + ' (updated)' });
  out.updated = updated.body.name === first && updated.body.id === ids[first];

  const last = Object.keys(values)[Object.keys(values).length - 1];
  await api.deleteEnvironmentVariable(auth, ids[last]);
  try {
    await api.getEnvironmentVariable(auth, ids[last]);
    out.afterDelete = 'no error';
  } catch (err) {
    out.afterDelete = err.response && err.response.statusCode;
  }
  try {
    await api.listEnvironmentVariables('bearer:envy_wrong');
    out.badToken = 'no error';
  } catch (err) {
    out.badToken = err.response && err.response.statusCode;
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  const res = err && err.response;
  console.log(JSON.stringify({ error: String((err && err.message) || err), status: res && res.statusCode, body: err && err.body }));
  process.exit(1);
});
