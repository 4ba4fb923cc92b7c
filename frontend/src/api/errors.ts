/** The API's single error shape, ``{"error": {"code", "message", "field", "details"}}``, made readable. */

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string; field?: string | null; details?: unknown[] };
  detail?: unknown;
}

/** Build an ApiError from whatever an error response carried (the API's shape, FastAPI's, or nothing). */
export function toApiError(body: unknown, response: Response): ApiError {
  const parsed = (body ?? {}) as ErrorBody;
  if (parsed.error?.message) {
    const field = parsed.error.field ?? null;
    const text = field && field !== "body" ? `${parsed.error.message} (${field})` : parsed.error.message;
    return new ApiError(text, response.status, parsed.error.code ?? "error", field);
  }
  const detail = typeof parsed.detail === "string" ? parsed.detail : response.statusText || "request failed";
  return new ApiError(`${response.status}: ${detail}`, response.status, "http_error");
}

/** Unwrap an openapi-fetch result: the data, or a thrown ApiError. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw toApiError(result.error, result.response);
  }
  return result.data as T;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
