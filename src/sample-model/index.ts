export * from './configs';
export * from './generate';
export * from './tokenizer';
export * from './variants';
