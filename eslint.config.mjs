import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.data/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'off',
    },
  },
  {
    // DESIGN §2 dependency rules, enforced rather than hoped for.
    files: ['services/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['@pulumi/*'], message: 'services/ never imports Pulumi (DESIGN §2).' }] }],
    },
  },
  {
    // The web console runs in the browser: DOM globals, React's hook rules, and nothing of the server side but the contract's plain constants.
    files: ['services/console/**/*.{ts,tsx,mts}'],
    plugins: { 'react-hooks': reactHooks },
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@pulumi/*'], message: 'services/ never imports Pulumi (DESIGN §2).' },
        { group: ['**/core/**', '**/api/**', '**/worker/**', '**/cli/**', '**/local/**', 'node:*'], message: 'The console is a browser app: it talks to the API over HTTP.' },
      ] }],
    },
  },
  {
    files: ['services/contract/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@pulumi/*'], message: 'The contract is pure TypeScript + zod.' },
        { group: ['**/core/**', '**/api/**', '**/worker/**', '**/cli/**', 'pg', 'bullmq', 'ioredis', 'express'], message: 'The contract does no I/O and imports no service code.' },
      ] }],
    },
  },
  {
    files: ['platform/**/*.ts', 'stacks/**/*.ts', 'policies/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/services/core/**', '**/services/api/**', '**/services/worker/**', '**/services/cli/**'], message: 'Infra shares only services/contract (DESIGN §2).' }] }],
    },
  },
);
