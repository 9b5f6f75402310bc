// `npm run test:e2e`: the end-to-end test through Debian's Postfix (test/e2e/). One file, its steps in
// order; it installs and starts Postfix, so it needs root and a generous timeout.
export default {
  files: ['dist/test/e2e/**/*.e2e.js'],
  timeout: '3m',
  concurrency: 1,
  workerThreads: false,
};
