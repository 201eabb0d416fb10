// The API over fetch: a bearer key per client, and errors that say what to do about a 401, 403 or 429.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: unknown = null,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

/** A sentence for the user about ``error``. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return `API key not accepted (401): ${error.message}. Log in with a valid key.`;
    if (error.status === 403) return `Not allowed for this key (403): ${error.message}`;
    if (error.status === 429) {
      const wait = error.retryAfterS !== null ? ` Try again in ${error.retryAfterS} s.` : "";
      return `Too many requests (429): ${error.message}.${wait}`;
    }
    return `${error.message} (${error.status})`;
  }
  if (error instanceof TypeError) return `Cannot reach the API: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

export class Api {
  constructor(
    readonly key: string,
    private readonly onUnauthorized: (error: ApiError) => void = () => {},
    readonly base = "",
  ) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>("POST", path, body, headers);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const response = await fetch(this.base + path, {
      method,
      headers: {
        Authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const payload = text ? safeJson(text) : null;
    if (!response.ok) {
      const error = errorFrom(response, payload, text);
      if (error.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return payload as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorFrom(response: Response, payload: unknown, text: string): ApiError {
  const body = (payload as { error?: { message?: string; details?: unknown } } | null)?.error;
  const retry = response.headers.get("Retry-After");
  const message = body?.message ?? (text.slice(0, 200) || response.statusText || "request failed");
  return new ApiError(response.status, message, body?.details ?? null, retry ? Number(retry) : null);
}

/** Checks ``key`` against the API; resolves when it is accepted. */
export async function checkKey(key: string): Promise<void> {
  await new Api(key).get("/api/v1/node-types");
}

let fanoutBase: Promise<string> | null = null;

/** The fanout's WebSocket base URL, from ``GET /api/v1/config`` (null there: this page's host). */
export function fanoutUrl(): Promise<string> {
  fanoutBase ??= fetch("/api/v1/config")
    .then((r) => (r.ok ? r.json() : { fanout_url: null, fanout_port: 8081 }))
    .then((config: { fanout_url: string | null; fanout_port: number }) => {
      if (config.fanout_url) return config.fanout_url;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${location.hostname}:${config.fanout_port}`;
    });
  return fanoutBase;
}
