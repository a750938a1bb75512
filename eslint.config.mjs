import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

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
