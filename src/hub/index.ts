// hub/: model ids → local files (the Hugging Face cache, downloads with resume and verification,
// progress). A leaf: it knows nothing of models beyond which files a checkpoint needs.
export { HubError } from './errors.js';
export { parseHubId, formatHubId, type HubModelId } from './model-id.js';
export { hubCacheDir } from './cache.js';
export { resolveModel, resolveHubModel, modelSpecProblem, defaultModelId, type HubOptions, type DownloadProgress, type ResolvedModel } from './resolve.js';
export { listCachedModels, removeCachedModel, type CachedModel } from './cached-models.js';
export { createProgressBar, formatBytes, formatDuration, type ProgressBar } from './progress.js';
