// esbuild loads .css imports as text (loader { '.css': 'text' } in src/ui/assets.ts).
declare module '*.css' {
  const text: string;
  export default text;
}
