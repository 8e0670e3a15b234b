// `nvs demo` cleans up after itself even when nvs cannot be started: its
// Ctrl-C handlers (which stop the default exit) do not outlive the call.
import { expect, it } from 'vitest';
import { runDemo } from '../src/nvs/demo.ts';

it('removes its signal handlers when nvs cannot start', async () => {
  const counts = () => [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
  const before = counts();
  const sink = { write: () => true };
  // A run directory below a file: nothing can be started there.
  await expect(runDemo('/dev/null/nvs-demo', { stdout: sink, stderr: sink, env: {} }, { keep: false, dummy: true })).rejects.toThrow();
  expect(counts()).toEqual(before);
});
