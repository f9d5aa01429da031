import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/*
 * Protocol Buffers wire format (https://protobuf.dev/programming-guides/encoding/)
 * for the few ONNX messages a one-node graph needs; field numbers from
 * onnx/onnx.proto3 (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto3).
 */
function varint (n: number | bigint): number[] {
  let v = BigInt(n)
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return out
}
const tag = (field: number, wire: number): number[] => varint((field << 3) | wire)
const int = (field: number, n: number): number[] => [...tag(field, 0), ...varint(n)]
const bytes = (field: number, b: Uint8Array | number[]): number[] => [...tag(field, 2), ...varint(b.length), ...b]
const str = (field: number, s: string): number[] => bytes(field, [...new TextEncoder().encode(s)])
const msg = (field: number, parts: number[][]): number[] => bytes(field, parts.flat())

const FLOAT = 1
const INT64 = 7

/** ValueInfoProto of a tensor with named (symbolic) or fixed dimensions */
function valueInfo (field: number, name: string, elemType: number, dims: Array<string | number>): number[] {
  const shape = dims.map(d => msg(1, [typeof d === 'string' ? str(2, d) : int(1, d)]))
  return msg(field, [str(1, name), msg(2, [msg(1, [int(1, elemType), msg(2, shape)])])])
}

/**
 * An ONNX model (IR 8, opset 13) whose whole graph is one Gather: input
 * `input_ids` [batch, sequence] (int64) picks rows of a `vocab x dim` float
 * table, giving `last_hidden_state` [batch, sequence, dim], the output a
 * transformers.js feature-extraction pipeline reads.
 *
 * @param table row-major `vocab x dim` values
 */
export function gatherOnnxModel (table: Float32Array, vocab: number, dim: number): Uint8Array {
  if (table.length !== vocab * dim) throw new RangeError('table must hold vocab x dim values')
  const raw = new Uint8Array(table.buffer, table.byteOffset, table.byteLength)
  const initializer = msg(5, [int(1, vocab), int(1, dim), int(2, FLOAT), str(8, 'embeddings'), bytes(9, raw)])
  const node = msg(1, [str(1, 'embeddings'), str(1, 'input_ids'), str(2, 'last_hidden_state'), str(3, 'gather'), str(4, 'Gather')])
  const graph = msg(7, [
    node,
    str(2, 'tiny'),
    initializer,
    valueInfo(11, 'input_ids', INT64, ['batch', 'sequence']),
    valueInfo(12, 'last_hidden_state', FLOAT, ['batch', 'sequence', dim])
  ])
  return Uint8Array.from([...int(1, 8), ...str(2, 'aistack'), ...graph, ...msg(8, [str(1, ''), int(2, 13)])])
}

/** Special tokens of the tiny model's vocabulary, ids 0-4 */
export const TINY_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']

/**
 * A BERT-style WordPiece tokenizer.json (Hugging Face tokenizers format:
 * BertNormalizer lower-casing, BertPreTokenizer, `[CLS] A [SEP]` template)
 * over the special tokens followed by `words`.
 */
export function wordPieceTokenizer (words: string[]): object {
  const vocab: Record<string, number> = {}
  ;[...TINY_SPECIAL_TOKENS, ...words].forEach((w, i) => { vocab[w] = i })
  const special = (id: string): object => ({ SpecialToken: { id, type_id: 0 } })
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TINY_SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]')],
      pair: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]'), { Sequence: { id: 'B', type_id: 1 } }, special('[SEP]')],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] }
      }
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab }
  }
}

/** What {@link writeTinyModel} wrote */
export interface TinyModel {
  /** The model folder, `<dir>/<name>` */
  folder: string
  /** Token ids in order: the special tokens, then the words */
  vocab: string[]
  /** Row-major `vocab.length x dim` token vectors */
  table: Float32Array
  dim: number
}

/**
 * Write a tiny sentence-transformers-shaped model in the layout
 * `LocalEmbedder` loads (`config.json`, `tokenizer.json`,
 * `tokenizer_config.json`, `onnx/model_quantized.onnx`): token vectors are
 * rows of a table (no attention layers), so a sentence vector is the mean of
 * its tokens' rows. Words listed in one group of `groups` share one row
 * value (they are synonyms to this model); other rows come from a seeded
 * generator. For tests and demos that must not download anything.
 */
export async function writeTinyModel (dir: string, name: string, groups: string[][], dim = 8): Promise<TinyModel> {
  const words = groups.flat()
  const vocab = [...TINY_SPECIAL_TOKENS, ...words]
  const table = new Float32Array(vocab.length * dim)
  let seed = 12345
  const random = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32 - 0.5 }
  for (let i = 0; i < TINY_SPECIAL_TOKENS.length * dim; i++) table[i] = random() * 0.01
  let row = TINY_SPECIAL_TOKENS.length
  for (const group of groups) {
    const v = Array.from({ length: dim }, random)
    for (let k = 0; k < group.length; k++, row++) table.set(v, row * dim)
  }
  const folder = join(dir, name)
  await mkdir(join(folder, 'onnx'), { recursive: true })
  await writeFile(join(folder, 'config.json'), JSON.stringify({ model_type: 'bert', architectures: ['BertModel'], hidden_size: dim, vocab_size: vocab.length }))
  await writeFile(join(folder, 'tokenizer.json'), JSON.stringify(wordPieceTokenizer(words)))
  await writeFile(join(folder, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 128, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]'
  }))
  await writeFile(join(folder, 'onnx', 'model_quantized.onnx'), gatherOnnxModel(table, vocab.length, dim))
  return { folder, vocab, table, dim }
}
