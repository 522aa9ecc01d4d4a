export * from './client';
export * from './model-store';
export * from './uri';
export * from './objects';
