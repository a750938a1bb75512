import { z } from 'zod';

export type JsonSchema = Record<string, unknown>;

/**
 * Converts zod schemas to JSON Schema (2020-12, which OpenAPI 3.1 uses) for a document
 * whose reusable parts live under `#/components/schemas`. zod puts recursive parts (such
 * as z.json()) under a local `$defs`; inside a larger document `#/$defs/...` would point
 * at the document root, so those definitions are hoisted into components under names
 * prefixed by their owner and the references rewritten.
 */
export class SchemaCollector {
  readonly components: Record<string, JsonSchema> = {};

  /** Registers `schema` as component `name` and returns a reference to it. */
  component(name: string, schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    this.components[name] = this.inline(name, schema, io);
    return { $ref: `#/components/schemas/${name}` };
  }

  /** The JSON Schema of `schema`, with any local definitions hoisted under `owner`. */
  inline(owner: string, schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
    const { $schema: _dialect, $defs, ...body } = generated;
    const definitions = ($defs ?? {}) as Record<string, JsonSchema>;
    const rename = (definition: string) => `${owner}_${definition.replace(/^_+/, '')}`;
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (node === null || typeof node !== 'object') return node;
      return Object.fromEntries(
        Object.entries(node).map(([key, value]) =>
          key === '$ref' && typeof value === 'string' && value.startsWith('#/$defs/')
            ? [key, `#/components/schemas/${rename(value.slice('#/$defs/'.length))}`]
            : [key, rewrite(value)],
        ),
      );
    };
    for (const [definition, definitionSchema] of Object.entries(definitions)) {
      this.components[rename(definition)] = rewrite(definitionSchema) as JsonSchema;
    }
    return rewrite(body) as JsonSchema;
  }
}
