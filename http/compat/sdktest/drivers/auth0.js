// Drives envy's hooksecrets dialect with the official auth0 SDK, unchanged.
// Usage: node auth0.js <package> <hook id>, the package being auth0 (v7)
// or auth0-v4. Reads ENVY_DOMAIN (host:port of envy over TLS), ENVY_TOKEN
// (the client secret when ENVY_CLIENT_ID is set) and SDKTEST_VALUES; prints one JSON object of what it saw.
const pkg = process.argv[2];
// A hook id of "create" has the SDK create the hook first (and list, get,
// update and delete it at the end).
const create = process.argv[3] === 'create';
let hook = process.argv[3];
const { ManagementClient } = require(pkg);

// The two major versions name the same calls differently.
function hooks(m) {
  if (m.hooks.secrets) {
    return {
      get: async () => unwrap(await m.hooks.secrets.get(hook)),
      add: (s) => m.hooks.secrets.create(hook, s),
      update: (s) => m.hooks.secrets.update(hook, s),
      remove: (names) => m.hooks.secrets.delete(hook, names),
    };
  }
  return {
    get: async () => unwrap(await m.hooks.getSecrets({ id: hook })),
    add: (s) => m.hooks.addSecrets({ id: hook }, s),
    update: (s) => m.hooks.updateSecrets({ id: hook }, s),
    remove: (names) => m.hooks.deleteSecrets({ id: hook }, names),
  };
}

// The hooks themselves.
function hookOps(m) {
  if (m.hooks.secrets) {
    return {
      create: async (d) => unwrap(await m.hooks.create(d)),
      list: async () => (await m.hooks.list({ per_page: 50 })).data,
      get: async (id) => unwrap(await m.hooks.get(id)),
      update: async (id, d) => unwrap(await m.hooks.update(id, d)),
      remove: (id) => m.hooks.delete(id),
    };
  }
  return {
    create: async (d) => unwrap(await m.hooks.create(d)),
    list: async () => unwrap(await m.hooks.getAll({ per_page: 50, page: 0 })),
    get: async (id) => unwrap(await m.hooks.get({ id })),
    update: async (id, d) => unwrap(await m.hooks.update({ id }, d)),
    remove: (id) => m.hooks.delete({ id }),
  };
}

// v4 wraps replies in {data}; v7 answers the body.
function unwrap(r) {
  return r && r.data !== undefined && r.status !== undefined ? r.data : r;
}

function status(err) {
  return err.statusCode || err.status || (err.rawResponse && err.rawResponse.status);
}

async function main() {
  const values = JSON.parse(process.env.SDKTEST_VALUES);
  // With ENVY_CLIENT_ID, the SDK signs in itself (client credentials at
  // /oauth/token, the secret being the envy token); else it is given the
  // token.
  const m = process.env.ENVY_CLIENT_ID
    ? new ManagementClient({ domain: process.env.ENVY_DOMAIN, clientId: process.env.ENVY_CLIENT_ID, clientSecret: process.env.ENVY_TOKEN })
    : new ManagementClient({ domain: process.env.ENVY_DOMAIN, token: process.env.ENVY_TOKEN });
  const out = {};
  const ops = hookOps(m);
  if (create) {
    const made = await ops.create({ name: 'sdk-hook-' + pkg, script: 'module.exports = function (c, x, cb) { cb(null, {}); };', triggerId: 'credentials-exchange', enabled: true });
    hook = made.id;
    out.hookId = hook;
  }
  const h = hooks(m);

  await h.add(values);
  const got = await h.get();
  out.names = Object.keys(got).sort();
  out.allHidden = Object.values(got).every((v) => v === '_VALUE_NOT_SHOWN');

  const first = process.env.SDKTEST_UPDATE;
  await h.update({ [first]: values[first] + ' (updated)' });
  // Writing the placeholder back keeps the stored value.
  const second = Object.keys(values)[1];
  await h.update({ [second]: '_VALUE_NOT_SHOWN' });

  try {
    await h.add({ [first]: 'again' });
    out.duplicate = 'no error';
  } catch (err) {
    out.duplicate = status(err);
  }
  try {
    await h.update({ NOT_THERE: 'x' });
    out.missing = 'no error';
  } catch (err) {
    out.missing = status(err);
  }

  await h.add({ SDK_TEMP: 'temporary' });
  await h.remove(['SDK_TEMP']);
  out.afterDelete = Object.keys(await h.get()).includes('SDK_TEMP');

  try {
    const bad = hooks(new ManagementClient({ domain: process.env.ENVY_DOMAIN, token: 'envy_wrong' }));
    await bad.get();
    out.badToken = 'no error';
  } catch (err) {
    out.badToken = status(err);
  }
  if (create) {
    out.listed = (await ops.list()).some((x) => x.id === hook);
    out.gotName = (await ops.get(hook)).name;
    out.updated = (await ops.update(hook, { name: 'sdk-renamed-' + pkg, enabled: false })).name;
    out.updatedEnabled = (await ops.get(hook)).enabled;
    await ops.remove(hook);
    try {
      await ops.get(hook);
      out.afterHookDelete = 'no error';
    } catch (err) {
      out.afterHookDelete = status(err);
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.message), status: status(err || {}) }));
  process.exit(1);
});
