/**
 * LLM configuration: one OpenAI-compatible endpoint per agent (ARCHITECTURE.md §1, §5; issue 6). The lead's
 * config loader validates the `llm` section of the project config with {@link llmConfigSchema}; stages call
 * `agentLlm(config, agentName)` (operators/llm/client.ts), which returns null for an agent that is not
 * configured, and the stage then takes its rule-based path.
 *
 * Shape (YAML/JSON):
 * ```yaml
 * llm:
 *   default:                       # applies to every agent unless overridden
 *     baseURL: https://api.deepseek.com/v1
 *     model: deepseek-chat
 *     apiKeyEnv: DEEPSEEK_API_KEY   # the NAME of the variable holding the key; keys never live in config
 *     priceInPerMTok: 0.27          # USD per million input tokens
 *     priceOutPerMTok: 1.10         # USD per million output tokens
 *   agents:
 *     solver: { model: deepseek-reasoner, temperature: 0.6 }
 *     judge: { enabled: false }
 * ```
 */
import { z } from 'zod';

/** The agents that call an LLM, by the name used in config, prompts/ and provenance. */
export const AGENT_NAMES = ['environment-builder', 'test-creator', 'statement-writer', 'classifier', 'solver', 'judge'] as const;
/** One of {@link AGENT_NAMES}. */
export type AgentName = (typeof AGENT_NAMES)[number];

/** Settings of one agent's endpoint. Units: temperature as in the OpenAI API (0–2), tokens, USD per 1e6 tokens, ms. */
export const agentLlmSchema = z
  .object({
    /** false switches the agent off even when `default` is set (the stage uses its rules) */
    enabled: z.boolean().default(true),
    /** OpenAI-compatible base URL including the version path, e.g. http://127.0.0.1:8000/v1 */
    baseURL: z.string().url(),
    model: z.string().min(1),
    /** name of the environment variable that holds the API key; unset variable → a placeholder key (local servers need none) */
    apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('OPENAI_API_KEY'),
    temperature: z.number().min(0).max(2).default(0),
    /** cap on completion tokens per call (`max_tokens`) */
    maxTokens: z.number().int().positive().default(4096),
    priceInPerMTok: z.number().nonnegative().default(0),
    priceOutPerMTok: z.number().nonnegative().default(0),
    /** USD per million input tokens served from the provider's prompt cache; default: priceInPerMTok */
    priceCachedInPerMTok: z.number().nonnegative().optional(),
    /** per-request timeout, ms */
    timeoutMs: z.number().int().positive().default(120_000),
    /**
     * Waits inside one call on HTTP 429 whose `retry-after` is at most maxRetryAfterMs. Every other failure
     * (5xx, timeouts, connection errors, a longer or missing retry-after) is thrown at once with `retriable`
     * set: the stage runtime owns retries (due-time retry topic), so they never multiply.
     */
    maxRetries: z.number().int().min(0).max(5).default(2),
    /** longest `retry-after` the client waits for in place, ms (a few seconds; longer waits belong to the runtime) */
    maxRetryAfterMs: z.number().int().min(0).max(30_000).default(5_000),
    /** requests in flight at once to this baseURL, across all agents in the process (the smallest configured value wins) */
    concurrency: z.number().int().positive().default(4),
  })
  .strict();
/** The validated settings of one agent (defaults applied). */
export type AgentLlmConfig = z.infer<typeof agentLlmSchema>;

/** The `llm` config section: defaults plus per-agent overrides (each field optional). */
export const llmConfigSchema = z
  .object({
    default: agentLlmSchema.partial().optional(),
    agents: z.record(z.enum(AGENT_NAMES), agentLlmSchema.partial()).default({}),
  })
  .strict();
/** The validated `llm` config section. */
export type LlmConfig = z.infer<typeof llmConfigSchema>;
/** The `llm` section as written (defaults not yet applied): what tests and callers may pass directly. */
export type LlmConfigInput = z.input<typeof llmConfigSchema>;

/**
 * The effective config of one agent: `default` overlaid with `agents[name]`, then validated.
 * Returns null when the agent has no endpoint (no baseURL or model after merging) or is disabled.
 * @throws ZodError when the merged settings are invalid (a config mistake, not a runtime condition).
 */
export function resolveAgentConfig(config: LlmConfig | LlmConfigInput | null | undefined, agent: AgentName): AgentLlmConfig | null {
  if (!config) return null;
  const merged = { ...(config.default ?? {}), ...(config.agents?.[agent] ?? {}) };
  if (merged.enabled === false) return null;
  if (!merged.baseURL || !merged.model) return null;
  return agentLlmSchema.parse(merged);
}
