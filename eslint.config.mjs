import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['bin/**', 'dist/**', 'node_modules/**', 'models/**', 'out/**', '**/*.js', '**/*.mjs', 'bench-results/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
