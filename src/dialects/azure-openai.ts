// Azure OpenAI (learn.microsoft.com/azure/ai-foundry/openai/reference). Two forms:
//   /openai/deployments/{deployment}/chat/completions?api-version=... (and every other
//   operation below a deployment): the deployment is a name the customer chose, and the body's
//   `model` is ignored by Azure;
//   /openai/v1/... (the v1 API): OpenAI's endpoints below /openai, the body `model` naming the
//   deployment.
// Below /openai outside a deployment, OpenAI's endpoint table applies (an allow-list).
// Either way the gateway sees a deployment name: it is mapped to the model it serves in the
// upstream's model_aliases, and an unmapped one is decided by policy.unknown_model.
// Errors are OpenAI's shape, which Azure uses and the openai SDK's AzureOpenAI client reads.
import { openaiEndpoints, realtimeFrameModels, renderOpenaiError, serverDefaults } from './openai.js'
import { MODEL_LESS, UNLISTED, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

function endpoint (method: string, path: UpstreamPath): ModelSource {
  if (!path.key.startsWith('/openai/')) return UNLISTED
  if (path.key.startsWith('/openai/deployments/') && path.segments.length >= 4) {
    return { kind: 'path', model: path.segments[2] ?? '', segment: 2, prefix: '', suffix: '', bodyIgnored: true }
  }
  // The deployments themselves (listed by older API versions) name no model.
  if (method === 'GET' && (path.key === '/openai/deployments' || (path.key.startsWith('/openai/deployments/') && path.segments.length === 3))) return MODEL_LESS
  const v1 = path.key.startsWith('/openai/v1/')
  const key = v1 ? path.key.slice('/openai'.length) : `/v1${path.key.slice('/openai'.length)}`
  // A fine-tuning job names the model it tunes (a base model, or a fine-tuned one), not a deployment.
  if (method === 'POST' && key === '/v1/fine_tuning/jobs') return FINE_TUNING_BASE
  // The classic API: OpenAI's endpoints below /openai (files, batches, the Responses API with
  // the deployment in the body, ...); Realtime over WebSocket is /openai/realtime?deployment=.
  return serverDefaults(openaiEndpoints(method, key, path, v1 ? 'model' : 'deployment'))
}

const FINE_TUNING_BASE: ModelSource = { kind: 'json', field: 'model', modelItself: true }

export const azureOpenai: Dialect = {
  name: 'azure-openai',
  family: 'azure-openai',
  endpoint,
  opaque: () => 'an Azure OpenAI deployment name does not say which model it serves',
  // Azure reads deployments from headers too: the Responses API's image_generation tool runs the
  // deployment x-ms-oai-image-generation-deployment names (Azure's docs set it as a client's
  // default header), and x-ms-model-mesh-model-name names the deployment a request runs.
  modelHeaders: [
    { name: 'x-ms-model-mesh-model-name', runs: 'request' },
    { name: 'x-ms-oai-image-generation-deployment', runs: { toolType: 'image_generation' } },
  ],
  webSockets: true,
  frameModels: realtimeFrameModels,
  ids: { api: 'Azure OpenAI' },
  renderError: renderOpenaiError,
}
