// Drives envy's apify dialect with the official apify-client, unchanged.
// Usage: node apify.js <package> (apify-client or an alias of another
// version). Reads ENVY_URL, ENVY_TOKEN and SDKTEST_VALUES (a JSON object of
// names and values); prints one JSON object of what it saw.
const { ApifyClient } = require(process.argv[2]);

async function main() {
  const values = JSON.parse(process.env.SDKTEST_VALUES);
  const client = new ApifyClient({ baseUrl: process.env.ENVY_URL, token: process.env.ENVY_TOKEN, maxRetries: 0 });
  const version = client.actor('janedoe~sdk-actor').version('0.1');
  const out = { created: {}, got: {}, secret: null };

  for (const [name, value] of Object.entries(values)) {
    const created = await version.envVars().create({ name, value, isSecret: false });
    out.created[name] = created.value === value && created.name === name && created.isSecret === false;
    const got = await version.envVar(name).get();
    out.got[name] = got.value === value;
  }
  const list = await version.envVars().list();
  out.total = list.total;
  out.names = list.items.map((v) => v.name);

  const secret = await version.envVars().create({ name: 'SDK_SECRET', value: 'sk-secret-value-123', isSecret: true });
  const gotSecret = await version.envVar('SDK_SECRET').get();
  out.secret = { created: secret.isSecret, hasValue: 'value' in gotSecret };

  const first = process.env.SDKTEST_UPDATE;
  const updated = await version.envVar(first).update({ name: first, value: values[first] + ' (updated)' });
  out.updated = updated.value === values[first] + ' (updated)';

  await version.envVar('SDK_SECRET').delete();
  // The client reads a 404 of type record-not-found as "no such var".
  out.afterDelete = (await version.envVar('SDK_SECRET').get()) === undefined;

  try {
    await version.envVars().create({ name: first, value: 'again' });
    out.duplicate = 'no error';
  } catch (err) {
    out.duplicate = { status: err.statusCode, type: err.type };
  }
  try {
    await new ApifyClient({ baseUrl: process.env.ENVY_URL, token: 'envy_wrong', maxRetries: 0 })
      .actor('janedoe~sdk-actor').version('0.1').envVars().list();
    out.badToken = 'no error';
  } catch (err) {
    out.badToken = { status: err.statusCode, type: err.type };
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.message), status: err && err.statusCode, type: err && err.type }));
  process.exit(1);
});
