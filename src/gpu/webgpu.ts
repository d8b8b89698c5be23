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
/** The instance and adapter behind the device, held: Dawn tears the device down when they are collected. */
let held: { gpu: GPU; adapter: GPUAdapter } | null = null;

/**
 * The process's GPU device, opened on the first call, and again after it was lost. A software
 * adapter (SwiftShader, WARP) is returned with `fallback: true`; the caller decides whether it will do.
 */
export function gpuDevice(): Promise<GpuDevice> {
  opened ??= open();
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
  const info = adapter.info;
  const fallback = !!(info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter;
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

/** A storage buffer holding `data` (padded to 4 bytes), from any memory (an index's shared one too). */
export function uploadBuffer(device: GPUDevice, data: ArrayBufferView, usage: number = USAGE.STORAGE): GPUBuffer {
  const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
  const buffer = device.createBuffer({ size, usage: usage | USAGE.COPY_DST });
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const shared = !(data.buffer instanceof ArrayBuffer);
  for (let at = 0; at < bytes.length; at += STAGE_BYTES) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + STAGE_BYTES));
    // writes move whole words: a last partial one goes padded
    const words = Math.ceil(part.length / 4) * 4;
    if (!shared && words === part.length) {
      device.queue.writeBuffer(buffer, at, part.buffer, part.byteOffset, part.length);
    } else {
      const copy = new Uint8Array(words);
      copy.set(part);
      device.queue.writeBuffer(buffer, at, copy.buffer, 0, words);
    }
  }
  return buffer;
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

/** A validation or out-of-memory error of `work`'s device calls, as a thrown Error. */
export async function checked<T>(device: GPUDevice, work: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const result = work();
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  const error = validation ?? memory;
  if (error) throw new Error(`${memory && !validation ? 'GPU out of memory' : 'GPU validation'}: ${error.message}`);
  return result;
}
