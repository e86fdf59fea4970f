/** The four git object types and their pack type codes (gitformat-pack: OBJ_COMMIT=1 … OBJ_TAG=4). */
export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

export const OBJECT_TYPES: readonly ObjectType[] = ['commit', 'tree', 'blob', 'tag'];

/** Pack type code of each object type. */
export const PACK_TYPE_CODE: Readonly<Record<ObjectType, number>> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/** A whole object: its type and inflated content. */
export interface GitObject {
  readonly type: ObjectType;
  readonly data: Uint8Array;
}

/** True for the four object type names. */
export function isObjectType(s: string): s is ObjectType {
  return s === 'commit' || s === 'tree' || s === 'blob' || s === 'tag';
}
