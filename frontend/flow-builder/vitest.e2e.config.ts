import { defineConfig } from "vitest/config";

// Browser tests: one real `aob up` stack, headless Chromium through playwright-core, files run one at a time.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    globalSetup: ["e2e/stack.ts"],
  },
});
