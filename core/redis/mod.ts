/**
 * The Redis codec in one import: request parser, reply scanner and helpers,
 * encoders, and the command table.
 */

export * from "./request.ts";
export {
  arrayElements,
  isError,
  isOk,
  readInteger,
  replyEnd,
  ReplyScanner,
  ReplyType,
} from "./reply.ts";
export * from "./encode.ts";
export * from "./commands.ts";
export * from "./keys.ts";
