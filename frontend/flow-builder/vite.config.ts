import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The orchestrator serves dist/ at `/`; `npm run dev` proxies the API to a local `aob up`.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", chunkSizeWarningLimit: 1500 },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { include: ["src/**/*.test.ts", "src/**/*.test.tsx"], environment: "node" },
});
