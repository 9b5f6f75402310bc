// `npm run test:stress`: the "nothing lost" harnesses at full size (VOUCH_STRESS=1 sets the sizes),
// one file at a time so the timings and peak memory they report are their own.
export default {
  files: ['dist/test/crash*.test.js', 'dist/test/fuzz*.test.js', 'dist/test/concurrency*.test.js', 'dist/test/disk*.test.js', 'dist/test/fsck*.test.js'],
  concurrency: 1,
  timeout: '60m',
  workerThreads: false,
  verbose: true,
};
