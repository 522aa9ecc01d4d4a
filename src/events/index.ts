export * from './config';
export * from './handlers';
export * from './marker';
export * from './pipeline';
export * from './status';
export * from './storage-event';
export * from './subscriber';
