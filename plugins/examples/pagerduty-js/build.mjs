// Builds pagerduty.wasm (Herald alert-destination component) from src/plugin.js.
// Usage: COMPONENTIZE_JS_PREFIX=<npm prefix> node build.mjs [out.wasm]
// where the prefix was filled by
//   npm install --prefix <npm prefix> @bytecodealliance/componentize-js@0.23.0
// (ESM ignores NODE_PATH, so the package is imported by file URL.)
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const prefix = process.env.COMPONENTIZE_JS_PREFIX;
const { componentize } = prefix
  ? await import(pathToFileURL(join(prefix, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href)
  : await import('@bytecodealliance/componentize-js');

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, 'pagerduty.wasm');
const started = Date.now();
const { component } = await componentize({
  sourcePath: join(here, 'src', 'plugin.js'),
  witPath: process.env.WIT_DIR ?? join(here, '..', '..', '..', 'wit'),
  worldName: 'alert-destination',
  // Without these the engine imports wasi:http (fetch() and the fetch
  // event), which Herald refuses: plugins must use herald:automation/http.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
console.log(`wrote ${out}: ${component.length} bytes in ${Date.now() - started} ms`);
