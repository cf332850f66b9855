package org.kerasdeblur.sample

import android.content.Context
import android.graphics.Bitmap
import android.util.Log
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.LiteRtException
import kotlin.math.floor
import kotlin.math.min

/**
 * Deblurs photos with a keras-deblur TFLite generator (float input/output, fixed input size).
 *
 * Tries the GPU accelerator first and falls back to the CPU (XNNPACK) when the device has no
 * usable GPU or the model does not compile for it. Photos of any size are cut into tiles of the
 * model's input size that overlap by [tileOverlap] pixels and are blended with linear ramps.
 *
 * Every step here is repeated in Python by export/android_reference.py, which the tests check
 * against the Keras model: change both together.
 *
 * @param modelAsset a .tflite file in the app's assets, e.g. "generator_fp16_256x256.tflite".
 * @param tileHeight the model's input height (see "io" in the export report JSON).
 * @param tileWidth the model's input width.
 * @param tileOverlap overlap between tiles in pixels, less than half a tile.
 */
class Deblurrer(
    context: Context,
    modelAsset: String,
    private val tileHeight: Int = 256,
    private val tileWidth: Int = 256,
    private val tileOverlap: Int = 32,
) : AutoCloseable {

    /** The accelerator the model actually runs on. */
    val accelerator: Accelerator
    private val model: CompiledModel

    init {
        require(tileHeight % 4 == 0 && tileWidth % 4 == 0) { "tile sides must be multiples of 4" }
        require(tileOverlap >= 0 && tileOverlap < min(tileHeight, tileWidth) / 2) {
            "tileOverlap must be in [0, tile / 2)"
        }
        var compiled: CompiledModel
        var used: Accelerator
        try {
            compiled = CompiledModel.create(context.assets, modelAsset, CompiledModel.Options(Accelerator.GPU))
            used = Accelerator.GPU
        } catch (error: LiteRtException) {
            Log.w(TAG, "GPU unavailable (${error.message}); running on the CPU")
            compiled = CompiledModel.create(context.assets, modelAsset, CompiledModel.Options(Accelerator.CPU))
            used = Accelerator.CPU
        }
        model = compiled
        accelerator = used
    }

    private val inputBuffers = model.createInputBuffers()
    private val outputBuffers = model.createOutputBuffers()
    private val tileInput = FloatArray(tileHeight * tileWidth * 3)

    /** Returns a deblurred copy of [bitmap] (same size, alpha kept). */
    fun deblur(bitmap: Bitmap): Bitmap {
        val width = bitmap.width
        val height = bitmap.height
        val pixels = IntArray(width * height)
        bitmap.getPixels(pixels, 0, width, 0, 0, width, height)
        val total = FloatArray(width * height * 3)
        val weights = FloatArray(width * height)

        for (top in tileStarts(height, tileHeight, tileOverlap)) {
            for (left in tileStarts(width, tileWidth, tileOverlap)) {
                val rows = min(tileHeight, height - top)
                val cols = min(tileWidth, width - left)
                // A tile larger than what is left of the photo is filled by mirroring.
                for (y in 0 until tileHeight) {
                    val sourceRow = (top + reflect(y, rows)) * width
                    for (x in 0 until tileWidth) {
                        fillInput(pixels[sourceRow + left + reflect(x, cols)], tileInput, (y * tileWidth + x) * 3)
                    }
                }
                inputBuffers[0].writeFloat(tileInput)
                model.run(inputBuffers, outputBuffers)
                val output = outputBuffers[0].readFloat()

                val rampY = ramp(rows, tileOverlap)
                val rampX = ramp(cols, tileOverlap)
                for (y in 0 until rows) {
                    for (x in 0 until cols) {
                        val weight = rampY[y] * rampX[x]
                        val target = (top + y) * width + left + x
                        val source = (y * tileWidth + x) * 3
                        for (c in 0 until 3) total[target * 3 + c] += output[source + c] * weight
                        weights[target] += weight
                    }
                }
            }
        }

        for (i in pixels.indices) {
            val w = weights[i]
            pixels[i] = (pixels[i] and ALPHA_MASK) or
                (toChannel(total[i * 3] / w) shl 16) or
                (toChannel(total[i * 3 + 1] / w) shl 8) or
                toChannel(total[i * 3 + 2] / w)
        }
        return Bitmap.createBitmap(pixels, width, height, Bitmap.Config.ARGB_8888)
    }

    override fun close() {
        inputBuffers.forEach { it.close() }
        outputBuffers.forEach { it.close() }
        model.close()
    }

    companion object {
        private const val TAG = "Deblurrer"
        private const val ALPHA_MASK = 0xFF shl 24
        private const val SCALE = 2f / 255f

        /** One ARGB pixel -> three floats in [-1, 1] (RGB order). */
        fun fillInput(pixel: Int, into: FloatArray, offset: Int) {
            into[offset] = ((pixel shr 16) and 0xFF) * SCALE - 1f
            into[offset + 1] = ((pixel shr 8) and 0xFF) * SCALE - 1f
            into[offset + 2] = (pixel and 0xFF) * SCALE - 1f
        }

        /** A float in [-1, 1] -> 0..255, halves rounded up. */
        fun toChannel(value: Float): Int =
            floor((value + 1f) * 127.5f + 0.5f).toInt().coerceIn(0, 255)

        /** Mirrors [index] into [0, size) without repeating the edge pixel (periodic). */
        fun reflect(index: Int, size: Int): Int {
            if (size == 1) return 0
            val period = 2 * (size - 1)
            val i = Math.floorMod(index, period)
            return if (i < size) i else period - i
        }

        /** Tile origins along one side: every (tile - overlap) pixels, the last flush with the end. */
        fun tileStarts(size: Int, tile: Int, overlap: Int): List<Int> {
            if (size <= tile) return listOf(0)
            val starts = (0 until size - tile step tile - overlap).toMutableList()
            starts.add(size - tile)
            return starts
        }

        /** Blending weights rising linearly over [overlap] pixels at both ends; never 0. */
        fun ramp(length: Int, overlap: Int): FloatArray {
            val weights = FloatArray(length) { 1f }
            val rise = min(overlap, length / 2)
            for (i in 0 until rise) {
                val edge = (i + 0.5f) / rise
                weights[i] = edge
                weights[length - 1 - i] = edge
            }
            return weights
        }
    }
}
