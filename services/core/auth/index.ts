export * from './credentials';
export * from './passwords';
export * from './tokens';
export * from './service';
