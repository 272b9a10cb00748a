// Replays, with Node's fetch, the requests of the two platforms that
// publish no SDK on npm, in the exact shape their API pages show
// (fetch(url, {method, headers: {Authorization: 'Bearer <token>',
// 'Content-Type': 'application/json'}, body})): the user secrets API and
// the container env API. Reads ENVY_URL, ENVY_TOKEN, SDKTEST_VALUES and
// SDKTEST_UPDATE; prints one JSON object of what it saw.
const base = process.env.ENVY_URL;
const headers = { Authorization: 'Bearer ' + process.env.ENVY_TOKEN, 'Content-Type': 'application/json' };

async function call(method, path, body) {
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function main() {
  const values = JSON.parse(process.env.SDKTEST_VALUES);
  const update = process.env.SDKTEST_UPDATE;
  const out = { secrets: {}, containers: {} };

  // User secrets: create, list, update by id, delete.
  const ids = {};
  for (const [name, value] of Object.entries(values)) {
    const r = await call('POST', '/api/v1/user/secrets', { name, value, provider: 'sdktest' });
    ids[name] = r.body.id;
    out.secrets[name] = r.status === 201 && r.body.name === name && !JSON.stringify(r.body).includes(value);
  }
  const list = await call('GET', '/api/v1/user/secrets');
  out.secretsList = { status: list.status, total: list.body.total, names: list.body.secrets.map((s) => s.name) };
  const put = await call('PUT', '/api/v1/user/secrets/' + ids[update], { value: values[update] + ' (updated)' });
  out.secretsUpdate = put.status;
  const del = await call('DELETE', '/api/v1/user/secrets/' + ids.SDK_HASH);
  const gone = await call('GET', '/api/v1/user/secrets/' + ids.SDK_HASH);
  out.secretsDelete = [del.status, gone.status, gone.body.type];

  // Container env: merge all, set one, list, delete one.
  const merge = await call('PATCH', '/api/v1/containers/cnt_sdktest/env', values);
  out.containers.merge = [merge.status, merge.body.message];
  const set = await call('PUT', '/api/v1/containers/cnt_sdktest/env/' + update, { value: values[update] + ' (updated)' });
  out.containers.set = set.status;
  const got = await call('GET', '/api/v1/containers/cnt_sdktest/env');
  const env = got.body.data.environment_vars;
  out.containers.list = Object.keys(values).every((k) => env[k] === (k === update ? values[k] + ' (updated)' : values[k]));
  const rm = await call('DELETE', '/api/v1/containers/cnt_sdktest/env/SDK_HASH');
  out.containers.remove = [rm.status, 'SDK_HASH' in rm.body.data.environment_vars];
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.stack) }));
  process.exit(1);
});
