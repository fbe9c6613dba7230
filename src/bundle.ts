/**
 * The bundle's entry (scripts/build.js): the commands, and pktflow's public API on
 * demand. Under `pktflow run` a pipeline file's import of pktflow's index (src/index.ts)
 * gets `api()` (bin/pktflow.js), so the pipeline and the runner share one copy of every
 * module and nothing of src/ is compiled when a pipeline starts.
 */
export * from './cli/main';

/** src/index.ts's exports, loaded at the first call: they bring the Kafka client, which the commands load only when they use Kafka */
export function api(): typeof import('./index') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./index') as typeof import('./index');
}
