// Builds the component from plugin.js. `http` and `fetch-event` are
// disabled: a Herald plugin reaches the network only through the host's
// herald:automation/http import (the host refuses wasi:http).
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const prefix = process.env.COMPONENTIZE_JS_PREFIX;
const { componentize } = await import(pathToFileURL(
  join(prefix, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href);
const here = dirname(fileURLToPath(import.meta.url));
const { component } = await componentize({
  sourcePath: join(here, 'plugin.js'),
  witPath: join(here, 'wit'),
  worldName: 'alert-destination',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(process.argv[2], component);
console.log(`wrote ${process.argv[2]} (${component.length} bytes)`);
