// Lint for hand-written code. Generated code (api/generated) is excluded: it is checked by
// `npm run gen:check` instead, and compiled under its own relaxed settings.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// api/ and executor/ are separate trust domains: each may import shared/, never the other.
const forbidImportsFrom = (...folders) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: folders.map((folder) => ({
        group: [`**/${folder}/**`, `**/${folder}`],
        message: `api/ and executor/ never import each other, and shared/ imports neither.`,
      })),
    },
  ],
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'api/generated/**', 'executor/helper/build/**', '.state/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  { files: ['api/**/*.ts'], rules: forbidImportsFrom('executor') },
  { files: ['executor/**/*.ts'], rules: forbidImportsFrom('api') },
  { files: ['shared/**/*.ts'], rules: forbidImportsFrom('api', 'executor') },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
