export { openStore, chunkRows, inChunks, type Store, type Db, type Trx, type OpenStoreOptions, type TransactionOptions } from './store.js';
export type * from './schema.js';
export type { DialectInfo, DialectCapabilities } from './dialects/types.js';
export { insertRows, type BulkInsertOptions } from './bulk.js';
export { analyzeGrownTables, HOT_TABLES } from './planner-stats.js';
