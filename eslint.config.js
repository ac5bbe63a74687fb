// Lint for hand-written code. Generated code (api/generated) is excluded: it is checked by
// `npm run gen:check` instead, and compiled under its own relaxed settings.
import { dirname, relative, resolve } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOT = import.meta.dirname;

/**
 * The trust boundaries, as import rules: where a file lies decides which of the project's folders
 * its relative imports may reach. api/ and executor/ are separate trust domains (each may import
 * shared/, never the other); jobctl is a client, built from the generated API code and shared/
 * only; shared/ imports neither side. The first rule whose folder holds the file applies.
 */
const BOUNDARIES = [
  {
    folder: 'api/jobctl/',
    onlyFrom: ['api/jobctl/', 'api/generated/', 'shared/'],
    why: 'jobctl imports only api/generated/ and shared/',
  },
  { folder: 'api/', notFrom: ['executor/'], why: 'api/ and executor/ never import each other' },
  { folder: 'executor/', notFrom: ['api/'], why: 'api/ and executor/ never import each other' },
  { folder: 'shared/', notFrom: ['api/', 'executor/'], why: 'shared/ imports neither side' },
];
/** What production runs is compiled JavaScript: no transpiler is ever loaded at run time. */
const PRODUCTION = ['api/', 'executor/', 'shared/', 'scripts/dev-stack.ts'];
const TRANSPILERS = /^(tsx|esbuild|typescript|ts-node)(\/|$)/;

const importBoundaries = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const file = relative(ROOT, context.filename);
    const boundary = BOUNDARIES.find((rule) => file.startsWith(rule.folder));
    const production = PRODUCTION.some((prefix) => file.startsWith(prefix));
    const check = (node) => {
      const specifier = node?.type === 'Literal' ? node.value : undefined;
      if (typeof specifier !== 'string') return;
      if (production && TRANSPILERS.test(specifier)) {
        context.report({
          node,
          message: `${specifier}: production code runs compiled with plain node and never loads a transpiler`,
        });
        return;
      }
      if (!boundary || !specifier.startsWith('.')) return;
      const target = `${relative(ROOT, resolve(dirname(context.filename), specifier))}`;
      const allowed = boundary.onlyFrom
        ? boundary.onlyFrom.some((folder) => target.startsWith(folder))
        : !boundary.notFrom.some((folder) => target.startsWith(folder));
      if (!allowed) context.report({ node, message: `${specifier}: ${boundary.why}` });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'api/generated/**',
      'executor/helper/build/**',
      '.state/**',
      'dist/**',
      'dist.new.*/**',
      'dist.old.*/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { jobworker: { rules: { 'import-boundaries': importBoundaries } } },
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
      'jobworker/import-boundaries': 'error',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
