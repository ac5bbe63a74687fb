// msgpackr ships its eval-free build (dist/index-no-eval.cjs) without type declarations; its
// exports are those of the main entry (shared/framing.ts uses it).
declare module 'msgpackr/index-no-eval' {
  export { addExtension, Packr, Unpackr } from 'msgpackr';
}
