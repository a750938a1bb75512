/**
 * The JSON Schema keyword that marks an input field (or the items of an array field) as
 * holding ids of the caller's uploaded files (see FileId). It reaches GET /v1/job-types and
 * the OpenAPI document with the rest of the input's schema, where the console reads it to
 * offer a file picker; an `x-` keyword, as OpenAPI reserves for extensions. In a file of
 * its own, without zod, so the console's bundle can import it.
 */
export const FILE_ID_KEYWORD = 'x-file-id';
