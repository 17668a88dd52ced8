// Types of cuda-toolkit.mjs (plain JavaScript) for the TypeScript tests.

export function assembleToolkit(options: { nvcc: string; nvidiaDirs?: string[]; out: string }): string;
