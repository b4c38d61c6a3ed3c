import { defineConfig } from 'vitest/config';

// Two suites. `unit` is pure logic plus real sockets on loopback and Unix sockets; it needs no privileges.
// `netns` builds network namespaces with real iptables/TPROXY and needs root; its files run one at a time
// because they share the kernel's namespace list and the CPU that their throughput checks rely on.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/unit/**/*.test.ts'],
          globalSetup: ['test/unit/global-setup.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'netns',
          include: ['test/netns/**/*.test.ts'],
          globalSetup: ['test/netns/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
