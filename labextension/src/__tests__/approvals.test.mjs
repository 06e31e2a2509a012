// Unit tests of the approval watcher's loop, on the compiled lib/ (node --test): a fake
// server answers the long poll from a script, fake prompts record what they were shown.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApprovalWatcher, nextRetryDelay } from '../../lib/approvals.js';

const call = (id, tool = 'delete_item') => ({
  id,
  server_id: 'gov',
  tool,
  arguments: { name: id },
  agent: { client: 'test-agent 1.0' },
  expires_in: 60
});

class HttpError extends Error {
  constructor(status) {
    super(`status ${status}`);
    this.status = status;
  }
}

/** A watcher whose polls answer `script` in order (then never again), with fake prompts. */
function harness(script) {
  const polls = [];
  const prompts = [];
  const sent = [];
  const errors = [];
  const sleeps = [];
  let next = 0;
  let sendFails = null;
  const watcher = new ApprovalWatcher({
    openPrompt: c => {
      let answer;
      const prompt = {
        call: c,
        closed: false,
        decision: new Promise(resolve => (answer = resolve)),
        answer: d => answer(d),
        close: () => {
          prompt.closed = true;
          answer(null);
        }
      };
      prompts.push(prompt);
      return prompt;
    },
    reportError: (c, decision, message) => errors.push({ id: c.id, decision, message }),
    fetchCalls: async (seen, signal) => {
      polls.push([...seen]);
      const step = script[next++];
      if (step === undefined) {
        // The server holds the poll until the watcher goes away.
        await new Promise(resolve => signal.addEventListener('abort', resolve));
        throw new Error('aborted');
      }
      await new Promise(resolve => setImmediate(resolve));
      if (step instanceof Error) {
        throw step;
      }
      return typeof step === 'function' ? step() : step;
    },
    sendDecision: async (id, decision) => {
      sent.push({ id, decision });
      if (sendFails) {
        throw sendFails;
      }
    },
    sleep: async ms => {
      sleeps.push(ms);
    }
  });
  return {
    watcher,
    polls,
    prompts,
    sent,
    errors,
    sleeps,
    failSends: error => (sendFails = error),
    // Turns of the event loop, not a wall-clock wait: each scripted answer takes one
    // setImmediate, and a timer could fire first on a busy machine.
    settle: async () => {
      for (let turn = 0; turn < 50; turn++) {
        await new Promise(resolve => setImmediate(resolve));
      }
    }
  };
}

test('the retry delay starts at 1 s and doubles up to 30 s', () => {
  const delays = [];
  let delay = null;
  for (let i = 0; i < 8; i++) {
    delay = nextRetryDelay(delay);
    delays.push(delay);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('each new call gets one prompt; seen is what the server holds', async () => {
  const h = harness([[call('a')], [call('a'), call('b')], [call('b')]]);
  void h.watcher.start();
  await h.settle();
  assert.deepEqual(h.polls, [[], ['a'], ['a', 'b'], ['b']]);
  assert.deepEqual(h.prompts.map(p => p.call.id), ['a', 'b']);
  // 'a' left the list (decided in another lab, or timed out): its prompt closed.
  assert.equal(h.prompts[0].closed, true);
  assert.equal(h.prompts[1].closed, false);
  assert.deepEqual(h.watcher.prompted, ['b']);
  assert.deepEqual(h.sent, []);
  h.watcher.dispose();
  assert.equal(h.prompts[1].closed, true);
});

test('a decision is sent once, and the call is not prompted again', async () => {
  let release;
  const gate = new Promise(resolve => (release = resolve));
  const h = harness([[call('a')], async () => (await gate, [call('a')]), []]);
  void h.watcher.start();
  await h.settle();
  h.prompts[0].answer('once');
  await h.settle();
  assert.deepEqual(h.sent, [{ id: 'a', decision: 'once' }]);
  release(); // the server still lists 'a' in the next answer (the POST raced it)
  await h.settle();
  assert.equal(h.prompts.length, 1);
  h.watcher.dispose();
});

test('a decision the server refuses is reported', async () => {
  const h = harness([[call('a', 'rename_item')]]);
  h.failSends(new HttpError(404));
  void h.watcher.start();
  await h.settle();
  h.prompts[0].answer('deny');
  await h.settle();
  assert.deepEqual(h.errors, [{ id: 'a', decision: 'deny', message: 'status 404' }]);
  h.watcher.dispose();
});

test('errors back off exponentially; a success resets the delay', async () => {
  const down = new HttpError(0);
  const h = harness([down, down, down, [], down]);
  void h.watcher.start();
  await h.settle();
  assert.deepEqual(h.sleeps, [1000, 2000, 4000, 1000]);
  h.watcher.dispose();
});

test('a 403 (a visitor) stops the watcher for good', async () => {
  const h = harness([new HttpError(403), [call('a')]]);
  await h.watcher.start();
  assert.equal(h.watcher.forbidden, true);
  assert.equal(h.polls.length, 1);
  assert.deepEqual(h.prompts, []);
});
