import { defineConfig } from "vitest/config";

// The UI benchmark (bench/ui.bench.ts): the browser tests' `aob up` stack and Chromium, one file, long timeouts.
export default defineConfig({
  test: {
    include: ["bench/**/*.bench.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
    globalSetup: ["e2e/stack.ts"],
  },
});
