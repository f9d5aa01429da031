/** multistream-select protocol id of the hybrid encrypter */
export const PQ_NOISE_PROTOCOL = '/noise-mlkem768-hfs/0.2.0'

/** Noise protocol name; it is longer than 32 bytes so it is hashed into `h` */
export const PQ_NOISE_SUITE = 'Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256'

/** protocol id of stock libp2p Noise */
export const NOISE_PROTOCOL = '/noise'

/** the names reported per connection */
export const ENCRYPTION_PQ = 'noise-mlkem768-hfs'
export const ENCRYPTION_NOISE = 'noise'
export const ENCRYPTION_QUIC = 'quic-tls'

export const X25519_KEY_LENGTH = 32
export const MLKEM768_PUBLIC_KEY_LENGTH = 1184
export const MLKEM768_CIPHERTEXT_LENGTH = 1088
export const MLKEM768_SHARED_SECRET_LENGTH = 32
export const MLKEM768_SEED_LENGTH = 64
export const MLKEM768_ENCAPSULATION_SEED_LENGTH = 32
export const TAG_LENGTH = 16

/** sizes of the three handshake messages with empty payloads */
export const MSG_A_LENGTH = X25519_KEY_LENGTH + MLKEM768_PUBLIC_KEY_LENGTH // 1216
export const MSG_B_MIN_LENGTH = X25519_KEY_LENGTH + (MLKEM768_CIPHERTEXT_LENGTH + TAG_LENGTH) + (X25519_KEY_LENGTH + TAG_LENGTH) + TAG_LENGTH // 1200
export const MSG_C_MIN_LENGTH = (X25519_KEY_LENGTH + TAG_LENGTH) + TAG_LENGTH // 64

/** largest Noise message (transport frames and handshake messages) */
export const NOISE_MSG_MAX_LENGTH = 65535
export const NOISE_MSG_MAX_PLAINTEXT = NOISE_MSG_MAX_LENGTH - TAG_LENGTH

/** prefix of the identity signature in the libp2p handshake payload */
export const SIGNATURE_PREFIX = 'noise-libp2p-static-key:'

/** peer store metadata key set once a peer completed the hybrid handshake */
export const PQ_PEER_METADATA_KEY = 'aistack/pq-handshake'

/** name of the counter group with handshakes by encrypter and outcome */
export const HANDSHAKE_METRIC = 'aistack_handshakes_total'
