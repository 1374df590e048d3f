import { containerFormats, diskFormats } from '@nova-lfs/core';
import { imageStatuses, imageVisibilities } from './image-tables.js';

/** Glance's version document (v2.16 current, the older v2.x supported), links under `imageUrl`. */
export function versionsDocument(imageUrl: string): { versions: unknown[] } {
  const href = `${imageUrl}/v2/`;
  const versions: unknown[] = [];
  for (let minor = 16; minor >= 0; minor--)
    versions.push({
      id: `v2.${minor}`,
      status: minor === 16 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href }],
    });
  return { versions };
}

const nullableString = (maxLength?: number) => ({
  type: ['null', 'string'],
  ...(maxLength ? { maxLength } : {}),
});

/** The JSON schema of an image (`GET /v2/schemas/image`), in Glance's shape. */
export function imageSchemaDocument(): Record<string, unknown> {
  return {
    name: 'image',
    additionalProperties: { type: 'string' },
    properties: {
      id: {
        type: 'string',
        description: 'An identifier for the image',
        pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
      },
      name: { ...nullableString(255), description: 'Descriptive name for the image' },
      status: {
        type: 'string',
        readOnly: true,
        enum: [...imageStatuses],
        description: 'Status of the image',
      },
      visibility: {
        type: 'string',
        enum: [...imageVisibilities],
        description: 'Scope of image accessibility',
      },
      protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
      os_hidden: {
        type: 'boolean',
        description: 'If true, image will not appear in default image list response.',
      },
      checksum: { ...nullableString(32), readOnly: true, description: 'md5 hash of image contents.' },
      os_hash_algo: {
        ...nullableString(64),
        readOnly: true,
        description: 'Algorithm of os_hash_value (sha256 here).',
      },
      os_hash_value: {
        ...nullableString(128),
        readOnly: true,
        description: 'Hexdigest of the image contents.',
      },
      owner: { ...nullableString(255), description: 'Owner of the image' },
      size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
      virtual_size: {
        type: ['null', 'integer'],
        readOnly: true,
        description: 'Virtual size of image in bytes',
      },
      container_format: {
        type: ['null', 'string'],
        enum: [null, ...containerFormats],
        description: 'Format of the container',
      },
      disk_format: {
        type: ['null', 'string'],
        enum: [null, ...diskFormats],
        description: 'Format of the disk',
      },
      created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
      updated_at: {
        type: 'string',
        readOnly: true,
        description: 'Date and time of the last image modification',
      },
      tags: {
        type: 'array',
        items: { type: 'string', maxLength: 255 },
        description: 'List of strings related to the image',
      },
      min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
      min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
      self: { type: 'string', readOnly: true, description: 'An image self url' },
      file: { type: 'string', readOnly: true, description: 'An image file url' },
      schema: { type: 'string', readOnly: true, description: 'An image schema url' },
    },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

/** The JSON schema of an image list (`GET /v2/schemas/images`). */
export function imagesSchemaDocument(): Record<string, unknown> {
  return {
    name: 'images',
    properties: {
      images: { type: 'array', items: imageSchemaDocument() },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}
