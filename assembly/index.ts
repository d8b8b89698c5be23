// Exports of the ZGQ WebAssembly module. All arguments are byte offsets into the imported memory
// and plain numbers; the module allocates nothing (the TypeScript side owns the memory layout).
export { distanceBlock, distanceByIds, nearestRows, nearestRowsT, seedUpdate, seedPick, accumulateRows } from './distance';
export { pqLut, adcByIds } from './pq';
export { selectZones, searchPq, searchExact, walkExact, rerank, stripExpanded } from './search';
// exported so that no optimiser may drop the read-ahead loads whose only consumer it is
export { touchSink } from './search';
export { robustPrune, linkOut, linkBack, buildOut, buildBack, trimLists, narrowRows, pruneCandidates, reverseLinks, BUILD_CONTEXT_BYTES } from './graph';
export { encodeHalf, decodeHalfBlock, halfRowNorms } from './half';
export { repairNodes } from './mutate';
export { searchQuery, searchRange, searchListed, searchAll, searchCandidates, rankStaged, SEARCH_CONTEXT_BYTES } from './query';
export { fastScanTop } from './fastscan';
export { searchGrouped, groupedScratchBytes, roundRowsInto, roundedRowBytes } from './grouped';
