/**
 * The one door to WebGPU: the device (navigator.gpu in a browser, the optional `webgpu` package in
 * Node), opened once per process on first use, and the few buffer operations the GPU kernels need.
 * Every way of not having a GPU is an answer here, never an exception: no package, no adapter, a
 * software (fallback) adapter where a hardware one is asked for, a device lost later.
 */
import { platform } from '../platform.js';

/** GPUBufferUsage and GPUMapMode flags (the globals exist in browsers only). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ = 0x1;

/** An open device, or why there is none. */
export type GpuDevice =
  | { ok: true; device: GPUDevice; adapter: string; fallback: boolean; limits: GPUSupportedLimits }
  | { ok: false; reason: string };

let opened: Promise<GpuDevice> | null = null;
/** When the last failed open may be tried again (an adapter can appear: a driver loaded, a GPU freed). */
let retryAt = 0;
/** How long a failed open is remembered. */
const RETRY_MS = 10_000;
/** The instance and adapter behind the device, held: Dawn tears the device down when they are collected. */
let held: { gpu: GPU; adapter: GPUAdapter } | null = null;

/**
 * The process's GPU device, opened on the first call, and again after it was lost. A software
 * adapter (SwiftShader, WARP) is returned with `fallback: true`; the caller decides whether it will do.
 */
export function gpuDevice(): Promise<GpuDevice> {
  if (opened && retryAt && performance.now() >= retryAt) opened = null;
  if (!opened) {
    retryAt = 0;
    opened = open().catch((err: unknown) => ({ ok: false as const, reason: `WebGPU failed: ${err instanceof Error ? err.message : String(err)}` }));
    void opened.then((d) => {
      if (!d.ok) retryAt = performance.now() + RETRY_MS;
    });
  }
  return opened;
}

async function open(): Promise<GpuDevice> {
  let gpu: GPU | null;
  try {
    gpu = await platform.webgpu();
  } catch (err) {
    return { ok: false, reason: `no WebGPU here: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!gpu) return { ok: false, reason: 'no WebGPU here (a browser without navigator.gpu)' };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { ok: false, reason: `the WebGPU adapter request failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!adapter) return { ok: false, reason: 'no WebGPU adapter (no GPU, or no driver for one)' };
  // adapter.info from Chromium 127; before it, requestAdapterInfo() and adapter.isFallbackAdapter
  const old = adapter as GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo>; isFallbackAdapter?: boolean };
  const info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean } = adapter.info ?? (await old.requestAdapterInfo?.().catch(() => undefined)) ?? {};
  const fallback = !!(info.isFallbackAdapter ?? old.isFallbackAdapter);
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
  try {
    // the largest buffers the adapter allows: an index's rows go up in one
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      },
    });
    held = { gpu, adapter };
    // lost (a driver reset, destroy()): the work in flight fails and runs on the CPU; the next asks again
    void device.lost.then(() => {
      opened = null;
    });
    return { ok: true, device, adapter: name, fallback, limits: device.limits };
  } catch (err) {
    return { ok: false, reason: `the WebGPU device request failed on ${name}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Bytes copied out of a shared memory per write (Dawn takes no SharedArrayBuffer). */
const STAGE_BYTES = 16 << 20;

/**
 * The device for work asked to run on `where`: any adapter for 'gpu', a hardware one for 'auto';
 * else why not (and the adapter's name when there is one).
 */
export async function deviceFor(where: 'gpu' | 'auto'): Promise<{ device: GPUDevice; adapter: string } | { reason: string; adapter: string | null }> {
  const gpu = await gpuDevice();
  if (!gpu.ok) return { reason: gpu.reason, adapter: null };
  if (gpu.fallback && where === 'auto') return { reason: `${gpu.adapter} is a software adapter (device: 'gpu' uses it all the same)`, adapter: gpu.adapter };
  return { device: gpu.device, adapter: gpu.adapter };
}

/** Why `work` (a batch, the zone assignment) failed on `device`: the device lost meanwhile, or what it said. */
export async function whyRefused(device: GPUDevice, err: unknown, work: string): Promise<string> {
  const lost = await Promise.race([device.lost.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 0))]);
  return lost ? `the GPU device was lost during ${work}` : `the GPU refused the work: ${(err instanceof Error ? err.message : String(err)) || 'no message'}`;
}

/** A storage buffer holding `data` (padded to 4 bytes), from any memory (an index's shared one too). */
export function uploadBuffer(device: GPUDevice, data: ArrayBufferView, usage: number = USAGE.STORAGE): GPUBuffer {
  const buffer = device.createBuffer({ size: Math.max(4, Math.ceil(data.byteLength / 4) * 4), usage: usage | USAGE.COPY_DST });
  writeBytes(device, buffer, 0, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return buffer;
}

/**
 * Write `bytes` into `buffer` from byte `at` (a multiple of 4), a last partial word padded with
 * zeros; from a shared memory through copies of at most 16 MB.
 */
export function writeBytes(device: GPUDevice, buffer: GPUBuffer, at: number, bytes: Uint8Array): void {
  const shared = !(bytes.buffer instanceof ArrayBuffer);
  for (let from = 0; from < bytes.length; from += STAGE_BYTES) {
    const part = bytes.subarray(from, Math.min(bytes.length, from + STAGE_BYTES));
    const words = Math.ceil(part.length / 4) * 4;
    if (!shared && words === part.length && part.byteOffset % 4 === 0) {
      device.queue.writeBuffer(buffer, at + from, part.buffer, part.byteOffset, part.length);
    } else {
      const copy = new Uint8Array(words);
      copy.set(part);
      device.queue.writeBuffer(buffer, at + from, copy.buffer, 0, words);
    }
  }
}

/** An empty storage buffer of `bytes` the host can copy out of. */
export function outputBuffer(device: GPUDevice, bytes: number): GPUBuffer {
  return device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: USAGE.STORAGE | USAGE.COPY_SRC });
}

/** The first `bytes` of each buffer, copied back to the host after the work queued so far. */
export async function readBuffers(device: GPUDevice, buffers: GPUBuffer[], bytes: number[]): Promise<ArrayBuffer[]> {
  const encoder = device.createCommandEncoder();
  const staging = buffers.map((buffer, i) => {
    const size = Math.max(4, Math.ceil(bytes[i] / 4) * 4);
    const read = device.createBuffer({ size, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    encoder.copyBufferToBuffer(buffer, 0, read, 0, size);
    return read;
  });
  device.queue.submit([encoder.finish()]);
  try {
    return await Promise.all(staging.map(async (read, i) => {
      await read.mapAsync(MAP_READ);
      const copy = read.getMappedRange().slice(0, bytes[i]);
      read.unmap();
      return copy;
    }));
  } finally {
    for (const read of staging) read.destroy();
  }
}

/** A validation or out-of-memory error of `work`'s device calls, as a thrown Error (the scopes popped in any case). */
export async function checked<T>(device: GPUDevice, work: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: work() };
  } catch (error) {
    outcome = { error };
  }
  // both popped at once: another batch's scopes cannot come between them
  const [validation, memory] = await Promise.all([device.popErrorScope(), device.popErrorScope()]);
  if ('error' in outcome) throw outcome.error;
  if (memory) throw new Error(`GPU out of memory: ${memory.message}`);
  if (validation) throw new Error(`GPU validation: ${validation.message}`);
  return outcome.value;
}
