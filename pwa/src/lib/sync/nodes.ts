/**
 * The node types of the canvas: their handles, their parameters and how the Properties
 * Inspector edits them. The types match the sample projects (data/samples/) and the task kinds
 * (tasks/kinds.py) their generation runs as.
 */

export type FieldKind = 'text' | 'longtext' | 'number' | 'integer' | 'seed';

export interface ParamField {
	key: string;
	label: string;
	kind: FieldKind;
	min?: number;
	max?: number;
	step?: number;
	help?: string;
}

export interface NodeType {
	type: string;
	label: string;
	description: string;
	inputs: string[];
	outputs: string[];
	fields: ParamField[];
	defaults: Record<string, unknown>;
	/** The task kind this node starts (null: the node cannot generate). */
	task: string | null;
}

export const NODE_TYPES: NodeType[] = [
	{
		type: 'prompt',
		label: 'Prompt',
		description: 'What an image should show, and what it must not.',
		inputs: [],
		outputs: ['out'],
		fields: [
			{ key: 'text', label: 'Prompt', kind: 'longtext' },
			{ key: 'negative', label: 'Negative prompt', kind: 'longtext' }
		],
		defaults: { text: '', negative: '' },
		task: null
	},
	{
		type: 'image.diffusion',
		label: 'Image generator',
		description: 'Makes an image from a prompt with a diffusion model.',
		inputs: ['prompt'],
		outputs: ['image'],
		fields: [
			{ key: 'model', label: 'Model', kind: 'text', help: 'Empty for the default model.' },
			{ key: 'steps', label: 'Steps', kind: 'integer', min: 1, max: 200 },
			{ key: 'guidance', label: 'Guidance', kind: 'number', min: 0, max: 30, step: 0.5 },
			{ key: 'width', label: 'Width', kind: 'integer', min: 64, max: 2048, step: 8 },
			{ key: 'height', label: 'Height', kind: 'integer', min: 64, max: 2048, step: 8 },
			{ key: 'seed', label: 'Seed', kind: 'seed', min: 0, help: 'Empty for a random seed.' }
		],
		defaults: { model: '', steps: 30, guidance: 7.5, width: 768, height: 432, seed: null },
		task: 'image.diffusion'
	},
	{
		type: 'image.preview',
		label: 'Image preview',
		description: 'Shows the latest take of the image connected to it.',
		inputs: ['image'],
		outputs: [],
		fields: [],
		defaults: {},
		task: null
	},
	{
		type: 'note',
		label: 'Note',
		description: 'Free text for the team.',
		inputs: [],
		outputs: [],
		fields: [{ key: 'text', label: 'Text', kind: 'longtext' }],
		defaults: { text: '' },
		task: null
	},
	{
		type: 'scene.ref',
		label: 'Scene reference',
		description: 'Links the canvas to a scene of the story.',
		inputs: [],
		outputs: [],
		fields: [{ key: 'scene', label: 'Scene id', kind: 'text' }],
		defaults: { scene: '' },
		task: null
	}
];

const BY_TYPE = new Map(NODE_TYPES.map((t) => [t.type, t]));

export function nodeType(type: string): NodeType {
	return (
		BY_TYPE.get(type) ?? {
			type,
			label: type,
			description: 'A node type this version of the studio does not know.',
			inputs: [],
			outputs: [],
			fields: [],
			defaults: {},
			task: null
		}
	);
}

export function defaultParams(type: string): Record<string, unknown> {
	return { ...nodeType(type).defaults };
}
