/** Validate a value against a schema of the committed openapi.json (the server's own contract). */
import Ajv2020 from "ajv/dist/2020";
import openapi from "../../openapi.json";

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(openapi as object, "openapi");

export function contractErrors(schema: string, value: unknown): string[] {
  const validate = ajv.getSchema(`openapi#/components/schemas/${schema}`);
  if (!validate) throw new Error(`no schema ${schema} in openapi.json`);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`);
}
