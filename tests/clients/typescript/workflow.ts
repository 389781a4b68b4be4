// A partner's program on openapi-typescript (default flags) + openapi-fetch, generated from
// openapi.yaml. tests/test_generated_clients.py generates ./schema.d.ts, writes ./config.ts,
// checks this file with `tsc --strict --noEmit`, compiles it and runs it with node against
// the real mock. Every value is read through the generated types, without a cast.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';
import { BASE_URL } from './config.js';

type ApiError = components['schemas']['BillingExhaustedError'];

const CONTAINER = 'cnt_00000000-0000-4000-8000-000000000103';
const PROJECT = 'prj_00000000-0000-4000-8000-000000000002';
const BROKE_CONTAINER = 'cnt_00000000-0000-4000-8000-000000000004';

const full = createClient<paths>({ baseUrl: BASE_URL, headers: { 'X-Api-Key': 'lp_test_full' } });
const broke = createClient<paths>({ baseUrl: BASE_URL, headers: { 'X-Api-Key': 'lp_test_broke' } });

// The probe: generateContent's brief must have a topic. If the types stopped requiring it,
// this directive would be unused and `tsc` would fail. (Never called.)
export async function probeTopicIsRequired(): Promise<void> {
  await full.POST('/v1/projects/{projectId}/content', {
    params: { path: { projectId: PROJECT } },
    // @ts-expect-error `topic` is required by NewBrief
    body: { brief: { angle: 'No topic given' } },
  });
}

// The other probe: fields with a default stay optional. The reference page's own request
// `{"brief": {"topic": "..."}}` for generateContent, and `{}` for regenerate, type-check as
// they are (no variantCount, no preserveAssets). (Never called.)
export async function probeDefaultsStayOptional(): Promise<void> {
  await full.POST('/v1/projects/{projectId}/content', {
    params: { path: { projectId: PROJECT } },
    body: { brief: { topic: 'Thirty days, one run at a time.' } },
  });
  await full.POST('/v1/content/{containerId}/regenerate', {
    params: { path: { containerId: CONTAINER } },
    body: {},
  });
}

async function advance(seconds: number): Promise<void> {
  const res = await fetch(`${BASE_URL}/__mock/clock/advance`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ seconds }),
  });
  if (!res.ok) throw new Error(`clock: ${res.status}`);
}

const started = await full.POST('/v1/content/{containerId}/regenerate', {
  params: { path: { containerId: CONTAINER }, header: { 'Idempotency-Key': crypto.randomUUID() } },
  body: { brief: { topic: 'Thirty days, one run at a time.' } },
});
if (!started.data) throw new Error(`regenerate: ${started.response.status}`);
const jobId: string = started.data.jobId;

// A second regenerate while the first runs: a 409 whose error is narrowed by its code.
const busy = await full.POST('/v1/content/{containerId}/regenerate', {
  params: { path: { containerId: CONTAINER } },
  body: {},
});
let conflictJobId: string | undefined;
if (busy.error && busy.error.error.code === 'CONFLICT') {
  conflictJobId = busy.error.error.details?.jobId;
}

await advance(60);
const job = await full.GET('/v1/jobs/{jobId}', { params: { path: { jobId } } });
if (!job.data) throw new Error(`getJob: ${job.response.status}`);
const container = await full.GET('/v1/content/{containerId}', {
  params: { path: { containerId: CONTAINER } },
});
if (!container.data) throw new Error(`getContent: ${container.response.status}`);

const generated = await full.POST('/v1/projects/{projectId}/content', {
  params: { path: { projectId: PROJECT } },
  body: { variantCount: 2, brief: { topic: 'Couch to 5k in thirty days' } },
});
if (!generated.data) throw new Error(`generate: ${generated.response.status}`);

// The 402: narrow on the code, read details.cost as a number.
const refused = await broke.POST('/v1/content/{containerId}/regenerate', {
  params: { path: { containerId: BROKE_CONTAINER } },
  body: { preserveAssets: false },
});
let billing: { code: ApiError['code']; cost: number; available: number } | undefined;
if (refused.error) {
  const error = refused.error.error;
  if (error.code === 'BILLING_EXHAUSTED') {
    const cost: number = error.details.cost;
    billing = { code: error.code, cost, available: error.details.available };
  }
}

console.log(JSON.stringify({
  jobId,
  conflictJobId,
  jobStatus: job.data.status,
  assetCount: container.data.assets.length,
  generatedContainers: generated.data.containerIds?.length ?? 0,
  billing: billing && { ...billing, costType: typeof billing.cost },
}));
