export * from './deployment-spec';
export * from './duration';
export * from './ids';
export * from './load';
