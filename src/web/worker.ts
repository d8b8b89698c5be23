/**
 * Web Worker side of the browser thread pool (the bundle's zgq-worker.js): runs the same tasks as
 * the Node worker (../worker.ts) on the index's shared WebAssembly.Memory. The compiled module and
 * the memory arrive with each task, so this module loads no WebAssembly of its own.
 */
import runTask, { type WorkerTask } from '../worker.js';

/**
 * A task message from web/platform.ts; the reply is `{ id }` or `{ id, error }`. Before any task the
 * worker posts `{ ready: true }`, once this module has loaded: the platform holds a new worker's
 * first task until then, so a worker that never loads leaves its task to the calling thread.
 */
export interface TaskMessage {
  id: number;
  task: WorkerTask;
}

/** The part of DedicatedWorkerGlobalScope used here (the DOM lib types `self` as a Window). */
interface WorkerScope {
  addEventListener(type: 'message', listener: (event: MessageEvent<TaskMessage>) => void): void;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.addEventListener('message', (event) => {
  const { id, task } = event.data;
  try {
    runTask(task);
    scope.postMessage({ id });
  } catch (e) {
    scope.postMessage({ id, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
scope.postMessage({ ready: true });
