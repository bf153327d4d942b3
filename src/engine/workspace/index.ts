export * from './types';
export * from './filter';
export * from './nodeSource';
export * from './ingest';
export * from './prompt';
export * from './skipSummary';
